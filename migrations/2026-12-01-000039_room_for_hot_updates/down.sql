ALTER TABLE members RESET (fillfactor);
ALTER TABLE passes RESET (fillfactor);
ALTER TABLE point_lots RESET (fillfactor);
