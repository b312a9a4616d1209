// evaluation only
