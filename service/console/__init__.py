"""The review console: reviewers sign in with their key and clear the queue of draft cases in a browser."""
