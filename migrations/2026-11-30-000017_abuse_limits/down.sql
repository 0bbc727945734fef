ALTER TABLE programs DROP COLUMN pos_max_points_adjustment;
ALTER TABLE programs DROP COLUMN pos_max_purchase;
DROP INDEX pin_failures_gan_idx;
ALTER TABLE pin_failures DROP COLUMN gan;
DROP INDEX device_logs_created_idx;
DROP INDEX link_opens_created_idx;
DROP INDEX link_opens_client_idx;
ALTER TABLE link_opens DROP COLUMN client;
