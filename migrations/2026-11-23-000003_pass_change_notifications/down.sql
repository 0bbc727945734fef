DROP TRIGGER templates_changed ON templates;
DROP FUNCTION passfold_notify_template_changed();
DROP TRIGGER passes_changed ON passes;
DROP FUNCTION passfold_notify_pass_changed();
