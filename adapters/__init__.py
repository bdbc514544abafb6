"""Edge adapters: clients that speak to the hub from outside (a school's SIF agent, an LA
service's queue consumer). Used by the demo, the benchmark and the end-to-end tests."""
