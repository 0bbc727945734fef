ALTER TABLE registrations DROP COLUMN merchant_id;
ALTER TABLE google_installs DROP COLUMN merchant_id;
ALTER TABLE google_notifications DROP COLUMN merchant_id;
ALTER TABLE google_objects DROP COLUMN merchant_id;
ALTER TABLE link_opens DROP COLUMN merchant_id;
