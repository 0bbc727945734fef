DROP INDEX member_stage_changes_entered_idx;
DROP TABLE automation_firings;
DROP TABLE automations;
