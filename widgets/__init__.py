"""The console's panes and modals, one per file; they read engine snapshots and ask for commands."""
