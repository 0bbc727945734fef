-- What an expiry batch (and any bulk ledger writer) pays per row, cut to what is needed.
--
-- 1. `members` and `passes` pages keep half their room free. A batch rewrites every member
--    and pass of a run of members who joined together (a welcome bonus expires for all of
--    them on one day), so all the rows of a page need a new version in one transaction;
--    at 80% fill only a quarter of them fit on their page, and every other one is a
--    non-HOT update adding an entry to each of the ~14 indexes of `members`. At 50% each
--    is a heap-only update (points, tags and messages are not indexed). Pages written from
--    now on.
-- 2. `point_activities` drops its foreign keys. It is append-only and written only by the
--    ledger writers, each under the member's row lock, so the member exists; the checks
--    cost two lookups per row (a fifth of an expiry batch). `ledger verify` checks instead
--    that every activity belongs to an existing member of its merchant.
-- 3. `point_activities_member_idx (member_id, created_at)` goes: the ledger is read in
--    `seq` order through `point_activities_member_seq_idx`, which also serves the window
--    sums by date (a member has few activities).
-- 4. `passfold_uuid_v7()`: time-ordered ids for ledger rows written in bulk, so that their
--    primary-key entries go to the end of the index instead of a random page each.
ALTER TABLE members SET (fillfactor = 50);
ALTER TABLE passes SET (fillfactor = 50);

ALTER TABLE point_activities
    DROP CONSTRAINT point_activities_member_id_fkey,
    DROP CONSTRAINT point_activities_merchant_id_fkey,
    DROP CONSTRAINT point_activities_referral_id_fkey;

DROP INDEX point_activities_member_idx;

-- RFC 9562 version 7: 48 bits of Unix milliseconds, then random bits with the version and
-- variant set.
CREATE FUNCTION passfold_uuid_v7() RETURNS uuid
    LANGUAGE sql VOLATILE
    AS $$
    SELECT encode(
               set_bit(set_bit(
                   overlay(uuid_send(gen_random_uuid())
                           placing substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                           FROM 1 FOR 6),
                   52, 1), 53, 1),
               'hex')::uuid
$$;
