DROP TABLE purchases;
DROP TABLE point_lots;
DROP INDEX members_birthday_idx;
DROP INDEX members_tier_review_idx;
ALTER TABLE members DROP CONSTRAINT members_birth_date_whole;
ALTER TABLE members DROP COLUMN birth_month, DROP COLUMN birth_day, DROP COLUMN birth_year,
    DROP COLUMN birthday_year, DROP COLUMN points_owed, DROP COLUMN tier_review_at;
DROP INDEX point_activities_one_expiry_per_lot;
DROP INDEX point_activities_member_seq_idx;
ALTER TABLE point_activities DROP COLUMN qualifying, DROP COLUMN purchase_id, DROP COLUMN lot_id;
ALTER TABLE point_activities DROP CONSTRAINT point_activities_type_check;
DELETE FROM point_activities WHERE type NOT IN ('welcome', 'earn', 'adjust', 'referral', 'tier');
UPDATE point_activities SET type = 'purchase' WHERE type = 'earn';
ALTER TABLE point_activities ADD CONSTRAINT point_activities_type_check
    CHECK (type IN ('welcome', 'purchase', 'adjust', 'referral', 'tier'));
ALTER TABLE programs DROP COLUMN lifecycle;
