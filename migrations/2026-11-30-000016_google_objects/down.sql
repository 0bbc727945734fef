DROP TABLE google_objects;
