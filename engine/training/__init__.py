"""Teaching a model the user's own classes: scan class folders, train (quick or full), evaluate, save a bundle."""
