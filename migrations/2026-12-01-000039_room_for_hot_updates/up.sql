-- Room on each page for heap-only (HOT) updates of the rows every points change and pass
-- change rewrites. Neither a member's points nor a pass's update tag is indexed, so with
-- free space on the page the new row version needs no new entry in any index; without it
-- (the default fill of 100%) each update adds an entry to every index of the table, about a
-- dozen on `members` including the member-search GIN index: half of an expiry batch's time
-- in the points-expiry benchmark. Applies to pages written from now on.
ALTER TABLE members SET (fillfactor = 80);
ALTER TABLE passes SET (fillfactor = 80);
ALTER TABLE point_lots SET (fillfactor = 85);
