/* envelope.c — placeholder, being written. */
