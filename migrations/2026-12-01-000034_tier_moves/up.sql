-- A program's thresholds can change (PUT /api/v1/programs/{id}): members whose tier moves
-- get a ledger row of type 'tier' (no points move; tier_after holds the new tier).
ALTER TABLE point_activities DROP CONSTRAINT point_activities_type_check;
ALTER TABLE point_activities ADD CONSTRAINT point_activities_type_check
    CHECK (type IN ('welcome', 'purchase', 'adjust', 'referral', 'tier'));
