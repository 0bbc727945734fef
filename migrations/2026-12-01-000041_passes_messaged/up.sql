-- Messages on many members' passes (expiry reminders, birthday and tier notices, and what
-- later sends to many cards) and the change that delivers them, in one UPDATE of each pass.
--
-- Writing the message and then the update tag in two statements made every pass row two
-- new versions, and the second UPDATE of a row written earlier by the same transaction runs
-- the foreign-key checks of `passes` again (PostgreSQL cannot skip them then): three lookups
-- a pass, a third of a reminder batch. The tag and Last-Modified expressions and the outbox
-- writer are the shared ones of passfold_pass_changed.
--
-- The passes are found by member through `passes_member_id_key` one by one: with a batch's
-- thousands of members the planner would otherwise read every pass of the table into a
-- hash, whose cost grows with the table instead of the batch.
CREATE FUNCTION passfold_passes_messaged(
    p_merchants uuid[], p_members uuid[], p_headers text[], p_bodies text[],
    p_at timestamptz, p_reason text, p_channels text[]
) RETURNS uuid[] AS $$
DECLARE
    v_ids uuid[];
    v_merchants uuid[];
BEGIN
    WITH p AS (
        UPDATE passes p
           SET message_header = t.header,
               message_body = t.body,
               message_at = p_at,
               update_tag = passfold_new_update_tag(),
               updated_at = passfold_new_modified(p.updated_at)
          FROM unnest(p_merchants, p_members, p_headers, p_bodies)
               AS t (merchant_id, member_id, header, body)
         WHERE p.member_id = t.member_id AND p.merchant_id = t.merchant_id
        RETURNING p.id, p.merchant_id
    )
    SELECT coalesce(array_agg(id), '{}'), coalesce(array_agg(merchant_id), '{}')
      INTO v_ids, v_merchants FROM p;
    PERFORM passfold_enqueue(v_merchants, v_ids, p_reason, p_channels, now(), now(), 0);
    RETURN v_ids;
END
$$ LANGUAGE plpgsql
   SET enable_hashjoin = off
   SET enable_mergejoin = off;

-- The same for passfold_pass_changed's passes, found by id: for a batch of a few thousand
-- ids of a large table the planner read the whole table (a fifth of an expiry batch at
-- 200,000 passes, and growing with the table); without sequential scans it fetches them by
-- key, or by a bitmap when they are many (a redesign's every pass).
ALTER FUNCTION passfold_pass_changed(uuid[], text, text[]) SET enable_seqscan = off;
