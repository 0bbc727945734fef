DROP FUNCTION passfold_passes_messaged(uuid[], uuid[], text[], text[], timestamptz, text, text[]);
ALTER FUNCTION passfold_pass_changed(uuid[], text, text[]) RESET enable_seqscan;
