"""The `memes` application: the composition root and the command line over archive/, indexer/, search/."""
