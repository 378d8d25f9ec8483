from nine.cli import main

raise SystemExit(main())
