/* conn.c — placeholder, being written. */
