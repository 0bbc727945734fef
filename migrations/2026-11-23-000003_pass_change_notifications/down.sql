DROP TRIGGER templates_changed ON templates;
DROP FUNCTION passmint_notify_template_changed();
DROP TRIGGER passes_changed ON passes;
DROP FUNCTION passmint_notify_pass_changed();
