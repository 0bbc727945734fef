DROP TABLE survey_answers;
DROP TABLE survey_invitations;
DROP TABLE survey_rules;
