DROP FUNCTION passfold_passes_messaged(uuid[], uuid[], text[], text[], timestamptz, text, text[]);
