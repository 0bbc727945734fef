ALTER TABLE campaign_recipients
    ADD CONSTRAINT campaign_recipients_member_id_fkey FOREIGN KEY (member_id) REFERENCES members (id),
    ADD CONSTRAINT campaign_recipients_merchant_id_fkey FOREIGN KEY (merchant_id) REFERENCES merchants (id),
    ADD CONSTRAINT campaign_recipients_pass_id_fkey FOREIGN KEY (pass_id) REFERENCES passes (id);
