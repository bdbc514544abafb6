pytest_plugins = ["tests.db_fixtures", "tests.broker_fixtures", "tests.private_services"]
