DROP TABLE site_secrets;
DROP TABLE join_attempts;
DROP TABLE link_opens;
ALTER TABLE programs DROP COLUMN join_code;
DROP INDEX point_activities_referral_idx;
ALTER TABLE point_activities DROP COLUMN referral_id;
DROP TABLE referrals;
