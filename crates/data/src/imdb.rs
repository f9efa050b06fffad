//! What is known about the IMDb dataset, the default data: its Hub repository (the CLI's
//! default `--data`) and its class names. IMDb is read like any other dataset (the `table`
//! pipeline finds its `plain_text/{train,test}-00000-of-00001.parquet` split files); the one
//! thing its files may not say is what its labels 0 and 1 mean, so [`class_names_for`] says it.

use std::path::Path;

/// The dataset repository.
pub const DATASET: &str = "stanfordnlp/imdb";
/// IMDb's class names, in class order: label 0 is a negative review, 1 a positive one (the
/// Hub's `ClassLabel` names for the dataset).
pub const CLASS_NAMES: [&str; 2] = ["neg", "pos"];
/// The folder of IMDb's split files (its only configuration on the Hub).
const CONFIG: &str = "plain_text";
/// IMDb's labelled split files in [`CONFIG`]. Its `unsupervised` split (label -1) is not one.
const SPLIT_FILES: [&str; 2] = [
    "train-00000-of-00001.parquet",
    "test-00000-of-00001.parquet",
];

/// [`CLASS_NAMES`] when `train_file` is IMDb's training file (`plain_text/train-00000-of-00001.parquet`
/// in a Hub snapshot or a copy of its tree): the Hub's files carry them as `ClassLabel`
/// metadata, but copies rebuilt from the original release (like `shared/hub`'s) do not, and
/// then the names are still neg and pos, not "0" and "1".
pub fn class_names_for(train_file: &Path) -> Option<Vec<String>> {
    let name = train_file.file_name()?.to_str()?;
    let folder = train_file.parent()?.file_name()?.to_str()?;
    (folder == CONFIG && SPLIT_FILES.contains(&name))
        .then(|| CLASS_NAMES.iter().map(|&n| n.to_owned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imdb_files_are_recognised_by_their_place_in_the_tree() {
        let names = Some(vec!["neg".to_owned(), "pos".to_owned()]);
        for path in [
            "/cache/datasets--stanfordnlp--imdb/snapshots/abc/plain_text/train-00000-of-00001.parquet",
            "plain_text/test-00000-of-00001.parquet",
        ] {
            assert_eq!(class_names_for(Path::new(path)), names, "{path}");
        }
        for path in [
            "train-00000-of-00001.parquet",
            "data/train-00000-of-00001.parquet",
            "plain_text/unsupervised-00000-of-00001.parquet",
            "plain_text/train.csv",
        ] {
            assert_eq!(class_names_for(Path::new(path)), None, "{path}");
        }
    }
}
