"""The department's documents: the report at a time (`report`), the briefing (`briefing/`), the
pipeline's status (`status`) and the preview of a file (`preview`). They read the store and the rules;
nothing below imports them."""
