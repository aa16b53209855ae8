"""The foundation every package builds on: one settings class, one root exception, the local services'
secrets, Kafka logins and URL checks. It imports nothing of the project but `schemas`."""
