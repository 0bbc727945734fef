DELETE FROM point_activities WHERE type = 'tier';
ALTER TABLE point_activities DROP CONSTRAINT point_activities_type_check;
ALTER TABLE point_activities ADD CONSTRAINT point_activities_type_check
    CHECK (type IN ('welcome', 'purchase', 'adjust', 'referral'));
