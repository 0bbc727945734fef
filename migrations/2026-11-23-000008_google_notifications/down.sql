DROP TABLE google_notifications;
