DROP TABLE member_stage_changes;
DROP FUNCTION passfold_append_only();
DROP TABLE member_segments;
DROP TABLE program_rfm;
ALTER TABLE programs DROP COLUMN segments;
