-- What judging cost per validation: calls to `llm_judge` judges that answered, and their summed cost.
ALTER TABLE validation_results
    ADD COLUMN judge_calls integer NOT NULL DEFAULT 0,
    ADD COLUMN judge_cost numeric(20, 8) NOT NULL DEFAULT 0;
