/* map.c — placeholder, being written. */
