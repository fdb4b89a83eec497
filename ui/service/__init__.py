"""The app's plain modules (no Streamlit): the job registry and its runner, run folders, access records, image
handling for uploads, configuration, charts. Testable without a page; ``ui/`` above holds the Streamlit-facing ones."""
