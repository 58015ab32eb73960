"""The case console: reviewers clear the queue of draft cases, dispatchers run the closed loop, in a browser."""
