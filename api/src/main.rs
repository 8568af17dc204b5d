use api::{Settings, startup};

#[rocket::main]
async fn main() {
    worker::db::init_tracing();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(2);
        }
    };
    let app = match startup::build(&settings).await {
        Ok(app) => app,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(1);
        }
    };
    if let Err(error) = api::rocket(rocket::Config::figment(), app).launch().await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
