DROP TABLE template_drafts;
DROP TABLE template_versions;
DROP TABLE template_blobs;
