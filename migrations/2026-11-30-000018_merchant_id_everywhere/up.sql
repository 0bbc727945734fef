-- Every merchant-owned table carries merchant_id (the distribution column of
-- docs/SCALING.md), filled from the row each of these hangs off.
ALTER TABLE registrations ADD COLUMN merchant_id uuid;
UPDATE registrations r SET merchant_id = p.merchant_id FROM passes p WHERE p.id = r.pass_id;
ALTER TABLE registrations ALTER COLUMN merchant_id SET NOT NULL;

ALTER TABLE google_installs ADD COLUMN merchant_id uuid;
UPDATE google_installs g SET merchant_id = p.merchant_id FROM passes p WHERE p.id = g.pass_id;
ALTER TABLE google_installs ALTER COLUMN merchant_id SET NOT NULL;

ALTER TABLE google_notifications ADD COLUMN merchant_id uuid;
UPDATE google_notifications g SET merchant_id = p.merchant_id FROM passes p WHERE p.id = g.pass_id;
ALTER TABLE google_notifications ALTER COLUMN merchant_id SET NOT NULL;

ALTER TABLE google_objects ADD COLUMN merchant_id uuid;
UPDATE google_objects g SET merchant_id = p.merchant_id FROM passes p WHERE p.id = g.pass_id;
ALTER TABLE google_objects ALTER COLUMN merchant_id SET NOT NULL;

ALTER TABLE link_opens ADD COLUMN merchant_id uuid;
UPDATE link_opens l SET merchant_id = pr.merchant_id FROM programs pr WHERE pr.id = l.program_id;
ALTER TABLE link_opens ALTER COLUMN merchant_id SET NOT NULL;
