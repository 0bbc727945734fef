//! Signed webhooks (issue 17): a merchant's endpoints, the events they subscribe to, and
//! the rules of signing and of safe targets. The events themselves are written by the one
//! writer `passfold_webhook_event` (migration `webhooks`), which the facts' tables call in
//! the transaction that writes the fact; the outbox's `webhook` channel delivers them.

pub mod deliveries;
pub mod endpoints;
pub mod events;
pub mod safety;
pub mod signing;

/// Every event type an endpoint may subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "member.created",
    "member.updated",
    events::MEMBER_ERASED,
    "purchase.recorded",
    "purchase.refunded",
    "points.changed",
    "points.expiring",
    "tier.changed",
    "gift_card.issued",
    "gift_card.loaded",
    "gift_card.redeemed",
    "gift_card.refunded",
    "gift_card.adjusted",
    "gift_card.deactivated",
    "pass.installed",
    "pass.removed",
    "referral.joined",
    "referral.rewarded",
    "campaign.sent",
    "automation.fired",
    events::ENDPOINT_DISABLED,
];
