"""Where invocations run: ``local`` worker interpreters or AWS Lambda."""
