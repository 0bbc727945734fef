use uuid::Uuid;

/// The merchant on whose behalf a query runs. Data-access functions for merchant-owned rows
/// take a `&Tenant` and filter by it themselves, so no handler can forget to: an object of
/// another merchant is simply not found.
///
/// A `Tenant` comes only from an authenticated API key ([`crate::auth`]) or from an object
/// whose own secret link was presented (a pass URL), never from client input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tenant {
    merchant_id: Uuid,
}

impl Tenant {
    pub(crate) fn of_authenticated(merchant_id: Uuid) -> Self {
        Self { merchant_id }
    }

    pub fn merchant_id(&self) -> Uuid {
        self.merchant_id
    }
}
