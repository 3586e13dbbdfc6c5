"""The `talkative` command line: every job a user runs, in-process, no servers needed."""
