-- clue_lists are the clue lists the city's big-data office returned
-- (ImportClues); their clues have origin 'big_data_office' and name the
-- list they came in. Only accepted lists are recorded.
CREATE TABLE clue_lists (
    id           bigserial PRIMARY KEY,
    file_name    text NOT NULL,
    rows         bigint NOT NULL,
    added        bigint NOT NULL,
    imported_by  text NOT NULL,
    imported_at  timestamptz NOT NULL
);

ALTER TABLE clues ADD COLUMN clue_list_id bigint REFERENCES clue_lists (id);
ALTER TABLE clues DROP CONSTRAINT clues_origin_check;
ALTER TABLE clues ADD CONSTRAINT clues_origin_check CHECK (origin IN ('comparison', 'manual', 'big_data_office'));
