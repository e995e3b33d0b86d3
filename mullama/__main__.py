from mullama.cli.main import main

raise SystemExit(main())
