"""The suite needs no configuration for the plugin: its fixtures are synchronous,
their registries live on the plugin's own event loop, and the tests here run
on pytest-asyncio (marked, as strict mode wants) or on anyio's plugin alike."""
