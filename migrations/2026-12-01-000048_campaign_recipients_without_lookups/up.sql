-- A campaign's audience is written in one statement from the members and passes it reads
-- (under the campaign's row lock), and members and passes are never deleted: the foreign keys
-- to them (and to the merchant) only cost three lookups per recipient, a second of fixing a
-- 20,000-member audience. The campaign's own key stays.
ALTER TABLE campaign_recipients
    DROP CONSTRAINT campaign_recipients_member_id_fkey,
    DROP CONSTRAINT campaign_recipients_merchant_id_fkey,
    DROP CONSTRAINT campaign_recipients_pass_id_fkey;
