DROP FUNCTION passfold_uuid_v7();
CREATE INDEX point_activities_member_idx ON point_activities (member_id, created_at);
ALTER TABLE point_activities
    ADD CONSTRAINT point_activities_member_id_fkey FOREIGN KEY (member_id) REFERENCES members (id),
    ADD CONSTRAINT point_activities_merchant_id_fkey FOREIGN KEY (merchant_id) REFERENCES merchants (id),
    ADD CONSTRAINT point_activities_referral_id_fkey FOREIGN KEY (referral_id) REFERENCES referrals (id);
ALTER TABLE members SET (fillfactor = 80);
ALTER TABLE passes SET (fillfactor = 80);
