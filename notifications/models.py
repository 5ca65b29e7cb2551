# Models arrive with this process (see the README architecture table).
