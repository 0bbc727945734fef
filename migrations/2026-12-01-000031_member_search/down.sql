DROP INDEX members_search_card_idx;
DROP INDEX members_search_phone_idx;
DROP INDEX members_search_email_idx;
DROP INDEX members_search_name_trigrams_idx;
DROP INDEX members_search_name_idx;
ALTER TABLE members DROP COLUMN search_name;
DROP FUNCTION passfold_digits(text);
DROP FUNCTION passfold_trigrams(text);
DROP FUNCTION passfold_fold(text);
