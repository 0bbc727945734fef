-- What each message of a campaign costs the merchant (an SMS gateway, a provider's fee),
-- in minor units of the program's currency: part of the campaign's ROMI with the bonus
-- points at the program's point_value.
ALTER TABLE campaigns
    ADD COLUMN cost_per_message bigint NOT NULL DEFAULT 0
        CHECK (cost_per_message BETWEEN 0 AND 100000000);
