CREATE INDEX outbox_pass_idx ON outbox (pass_id);
ALTER TABLE outbox ADD CONSTRAINT outbox_pass_id_fkey FOREIGN KEY (pass_id) REFERENCES passes (id);
ALTER TABLE outbox ADD CONSTRAINT outbox_merchant_id_fkey FOREIGN KEY (merchant_id) REFERENCES merchants (id);
