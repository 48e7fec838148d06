/* hub.c — placeholder, being written. */
