-- Keyset pages of the list endpoints and exports (docs/INTEGRATIONS.md): each page is a
-- range of one of these, read from where the previous page's cursor ended. Only columns
-- that are never updated are indexed: `updated_at` is not (gift cards' and members' every
-- balance change would then stop being a HOT update, migration 000039), so lists ordered
-- by it read the merchant's rows and sort them.
CREATE INDEX point_activities_merchant_seq_idx ON point_activities (merchant_id, seq);
CREATE INDEX gift_card_activities_merchant_seq_idx ON gift_card_activities (merchant_id, seq);
CREATE INDEX gift_cards_merchant_created_idx ON gift_cards (merchant_id, created_at, id);
