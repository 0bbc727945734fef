DROP TABLE google_installs;
DROP TABLE google_callbacks;
